import { PageHeader } from '../components/page-header.js';

export default function RolloutPage() {
  return <PageHeader title="Rollout" />;
}
