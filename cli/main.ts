/**
 * Every client command of the `edgeml` program. Register a new one here (its import and an
 * `addXCommands(program, io);` line), and in LAZY_COMMANDS (cli/program.ts) so that `edgeml NAME`
 * loads only its module; a command missing there still works, with the whole tree loaded
 * (test/unit/cli-lazy-commands.test.ts says which).
 */
import type { Command } from 'commander';
import type { CliIo } from './commands/client-command.js';
import { buildBaseProgram, type ProgramStyle } from './program.js';
import { addApiKeyCommands } from './commands/apikeys.js';
import { addDeploymentCommands } from './commands/deployments.js';
import { addRolloutCommands } from './commands/rollouts.js';
import { addDeviceCommands } from './commands/devices.js';
import { addScoreCommand } from './commands/score.js';
import { addImageCommands } from './commands/images.js';
import { addManifestCommands } from './commands/manifests.js';
import { addModelCommands } from './commands/models.js';
import { addTelemetryCommands } from './commands/telemetry.js';
import { addCaptureCommands } from './commands/captures.js';
import { addRetrainingCommands } from './commands/retraining.js';
import { addDatasetCommands } from './commands/datasets.js';
import { addTrainerCommands } from './commands/trainers.js';
import { addLogsCommand } from './commands/logs.js';
import { addContextCommands } from './commands/context.js';
import { addCompletionCommand } from './commands/completion.js';
import { addServiceClientCommand } from './commands/service-client.js';
import { addServeCommand } from './commands/serve.js';
import { addSchemaCommands } from './commands/schema.js';
export { main, type ProgramStyle } from './program.js';

export function addClientCommands(program: Command, io: CliIo): Command {
  addModelCommands(program, io);
  addManifestCommands(program, io);
  addImageCommands(program, io);
  addDeviceCommands(program, io);
  addDeploymentCommands(program, io);
  addRolloutCommands(program, io);
  addScoreCommand(program, io);
  addApiKeyCommands(program, io);
  addTelemetryCommands(program, io);
  addCaptureCommands(program, io);
  addRetrainingCommands(program, io);
  addDatasetCommands(program, io);
  addTrainerCommands(program, io);
  addLogsCommand(program, io);
  addContextCommands(program, io);
  addCompletionCommand(program, io);
  addServiceClientCommand(program, io);
  addServeCommand(program, io);
  addSchemaCommands(program, io);
  return program;
}

export function buildProgram(io: CliIo, style: ProgramStyle = {}): Command {
  return addClientCommands(buildBaseProgram(io, style), io);
}
