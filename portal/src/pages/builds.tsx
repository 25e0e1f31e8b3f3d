import { PageHeader } from '../components/page-header.js';

export default function BuildsPage() {
  return <PageHeader title="Builds" />;
}
