import { PageHeader } from '../components/page-header.js';

export default function BuildPage() {
  return <PageHeader title="Build" />;
}
