import { PageHeader } from '../components/page-header.js';

export default function TelemetryPage() {
  return <PageHeader title="Telemetry" />;
}
