import { useEffect, useRef, type ReactNode, type RefObject } from 'react';

type Props = {
  title: string;
  onClose: () => void;
  children: ReactNode;
  /** Actions kept in view below the scrolling body. */
  footer?: ReactNode;
  /** The element to focus first (else the dialog's first field). */
  initialFocus?: RefObject<HTMLElement | null>;
};

/** A modal built on <dialog>: the page behind is inert, Tab stays inside, Esc closes it, focus
 * moves in on open and back to what had it on close. */
export function Dialog({ title, onClose, children, footer, initialFocus }: Props) {
  const ref = useRef<HTMLDialogElement>(null);
  const onCloseRef = useRef(onClose);
  onCloseRef.current = onClose;

  useEffect(() => {
    const dialog = ref.current;
    if (dialog === null) return;
    const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    dialog.showModal();
    const first =
      initialFocus?.current ?? dialog.querySelector<HTMLElement>('input, select, textarea, button:not(.dialog-close)');
    first?.focus();
    function cancel(event: Event): void {
      event.preventDefault(); // we close through React state, not the browser
      onCloseRef.current();
    }
    dialog.addEventListener('cancel', cancel);
    return () => {
      dialog.removeEventListener('cancel', cancel);
      if (dialog.open) dialog.close();
      if (opener !== null && opener.isConnected) opener.focus();
    };
  }, [initialFocus]);

  return (
    <dialog ref={ref} className="dialog" aria-labelledby="dialog-title">
      <header className="dialog-header">
        <h2 id="dialog-title">{title}</h2>
        <button type="button" className="dialog-close" aria-label="Close" onClick={() => onCloseRef.current()}>
          ×
        </button>
      </header>
      <div className="dialog-body">{children}</div>
      {footer !== undefined && footer !== null && footer !== false && <footer className="dialog-footer">{footer}</footer>}
    </dialog>
  );
}
