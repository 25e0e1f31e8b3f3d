import { PageHeader } from '../components/page-header.js';

export default function FleetPage() {
  return <PageHeader title="Fleet" />;
}
