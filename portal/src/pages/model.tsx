import { PageHeader } from '../components/page-header.js';

export default function ModelPage() {
  return <PageHeader title="Model" />;
}
