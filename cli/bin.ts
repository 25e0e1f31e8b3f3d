/**
 * The process entry. `--version` is answered before the program tree is loaded: it is what scripts
 * and shells call most often, and loading every command costs several hundred milliseconds.
 */
const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  const { edgemlVersion } = await import('../shared/version.js');
  process.stdout.write(`${edgemlVersion()}\n`);
} else {
  const { main } = await import('./program.js');
  await main(process.argv);
}
