import { Link } from '../app/router';
import { PageTitle } from '../components/PageTitle';

export function NotFoundPage({ path }: { path: string }) {
  return (
    <div className="page">
      <PageTitle title="Page not found" />
      <p>
        There is no page at <code>{path}</code>. <Link to="/">Go to your towns</Link>.
      </p>
    </div>
  );
}
