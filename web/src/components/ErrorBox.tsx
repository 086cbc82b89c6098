import { describeError } from '../app/errors';

type Props = {
  error: unknown;
  /** What failed, in words ("Could not load the rigs"). */
  what: string;
  onRetry?: () => void;
};

/** A failed call, said in words, with a way to try again. */
export function ErrorBox({ error, what, onRetry }: Props) {
  const described = describeError(error);
  return (
    <div className="error-box" role="alert">
      <p className="error-what">{what}</p>
      <p>{described.title}</p>
      {described.detail !== null && <p className="error-detail">{described.detail}</p>}
      {onRetry !== undefined && (
        <button type="button" className="button secondary" onClick={onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}
