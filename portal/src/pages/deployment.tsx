import { PageHeader } from '../components/page-header.js';

export default function DeploymentPage() {
  return <PageHeader title="Deployment" />;
}
