import { PageHeader } from '../components/page-header.js';

export default function DeploymentsPage() {
  return <PageHeader title="Deployments" />;
}
