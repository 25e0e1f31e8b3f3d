import { PageHeader } from '../components/page-header.js';

export default function ModelsPage() {
  return <PageHeader title="Models" />;
}
