// Follows a deploy the daemon runs: prints each step as it happens (✔ / ✖ lines
// that read the same on a TTY and in CI logs) and returns the final record.
import chalk from 'chalk'
import type {ControlClient} from '../sim/control/control-client.js'
import type {DeployRecord, DeployStep} from '../sim/deploy/deploy-types.js'

const POLL_MS = 250

export function describeStep(s: DeployStep): string {
  const mark = s.kind === 'failed' || s.kind === 'rollback' ? chalk.red('✖') : s.kind === 'analysis' && s.analysis?.verdict !== 'pass' ? chalk.yellow('!') : chalk.green('✔')
  const weights = s.weights
    ? chalk.dim(` [${Object.entries(s.weights)
        .map(([v, w]) => `${v} ${Math.round(w)}%`)
        .join(', ')}]`)
    : ''
  return `${mark} ${chalk.bold(s.kind.padEnd(10))} ${s.message}${weights}`
}

export async function followDeploy(client: ControlClient, record: DeployRecord, print: (line: string) => void, quiet: boolean): Promise<DeployRecord> {
  let shown = 0
  let current = record
  for (;;) {
    for (; shown < current.steps.length; shown++) if (!quiet) print(describeStep(current.steps[shown]))
    if (current.outcome !== 'running') return current
    await new Promise((r) => setTimeout(r, POLL_MS))
    current = await client.deployRecord(record.id)
  }
}

export function outcomeLine(r: DeployRecord): string {
  switch (r.outcome) {
    case 'restarted':
      return chalk.green(`${r.plan.service} restarted (${r.id}).`)
    case 'promoted':
      return chalk.green(`${r.plan.service} is on ${r.plan.to} (${r.id}).`)
    case 'rolled-back':
      return chalk.red(`${r.plan.service} rolled back to ${r.from.join(', ')} (${r.id}).`)
    case 'failed':
      return chalk.red(`deploy ${r.id} of ${r.plan.service} failed.`)
    default:
      return `deploy ${r.id} of ${r.plan.service} is running; follow it with \`mesh history ${r.plan.service}\`.`
  }
}
