import { PageHeader } from '../components/page-header.js';

export default function DevicePage() {
  return <PageHeader title="Device" />;
}
