import {Args, Flags} from '@oclif/core'
import chalk from 'chalk'
import {MeshCommand} from '../cli/mesh-command.js'
import {formatDuration} from '../sim/config/duration.js'
import {describeFault, type FaultInfo} from '../sim/faults/fault.js'
import {parseFaultFlags, withOptionalValues} from '../sim/faults/fault-flags.js'
import {describeSelectors, faultTarget} from './faults.js'

export default class InjectFault extends MeshCommand {
  static override description = `Inject a fault into a service: delay, abort, reset, partition, bandwidth or slow close on its requests, kill / pause its processes, or make it present a bad certificate.

Exactly one kind per fault. Per-request faults act on the service's inbound side by default, so its callers' retries, timeouts and outlier detection see them; --at caller applies them on the callers' outbound side instead (before their retries). A fault stays until \`mesh clear-faults\` or until --duration passes.

On a protocol: tcp service they act on each new connection, as Toxiproxy's toxics do: --delay and --bandwidth on what the service sends back, --reset after --after-bytes (or at once), --abort and --partition refuse it, --partition --blackhole holds it unanswered, --slow-close holds its end.

--cert makes the service's instances present a bad certificate wherever they present theirs (mTLS listeners, ISTIO_MUTUAL upstreams, their MESH_TLS_* files), so callers that verify it fail with the TLS reason.`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> inject-fault payments --delay 300ms --jitter 50ms',
    '<%= config.bin %> inject-fault payments --abort 503 --percent 30 --seed 7 --duration 60s',
    '<%= config.bin %> inject-fault payments@v2 --abort 500 --first 2',
    '<%= config.bin %> inject-fault inventory --reset --after-bytes 100 --from catalog',
    '<%= config.bin %> inject-fault cart --partition --blackhole --path /checkout',
    '<%= config.bin %> inject-fault catalog --bandwidth 16kb/s',
    '<%= config.bin %> inject-fault cart --kill 1',
    '<%= config.bin %> inject-fault cart --pause 3s --count 2',
    '<%= config.bin %> inject-fault orders --jwks-unavailable --duration 2m',
    '<%= config.bin %> inject-fault payments --cert expired --duration 2m',
  ]
  static override args = {target: Args.string({required: true, description: 'SERVICE or SERVICE@VERSION'})}
  static override flags = {
    delay: Flags.string({helpGroup: 'KIND', description: 'hold each request this long before it reaches the service, e.g. 300ms'}),
    jitter: Flags.string({helpGroup: 'KIND', description: 'with --delay: ± this much, uniformly'}),
    abort: Flags.string({helpGroup: 'KIND', description: 'answer with this HTTP status (503) instead, or this gRPC status (UNAVAILABLE): a gRPC call gets it as such, an HTTP request as its HTTP equivalent (x-mesh-response-flags: FI)'}),
    reset: Flags.boolean({helpGroup: 'KIND', description: 'reset the connection (the caller sees 502 UC; with --at caller, the client is reset)'}),
    'after-bytes': Flags.string({helpGroup: 'KIND', description: 'with --reset: pass this many response bytes, then reset mid-response'}),
    partition: Flags.boolean({helpGroup: 'KIND', description: 'the service is unreachable: connection refused (503 UF)'}),
    blackhole: Flags.boolean({helpGroup: 'KIND', description: 'with --partition: requests hang until the caller\'s timeout instead'}),
    bandwidth: Flags.string({helpGroup: 'KIND', description: 'throttle response bytes, e.g. 16kb/s'}),
    'slow-close': Flags.string({helpGroup: 'KIND', description: 'hold the end of each response this long (default 1s): `--slow-close [D]`'}),
    kill: Flags.string({helpGroup: 'KIND', description: 'SIGKILL this many running instances (default 1; the supervisor restarts them): `--kill [N]`'}),
    pause: Flags.string({helpGroup: 'KIND', description: 'SIGSTOP instances for this long, then SIGCONT, e.g. 3s'}),
    count: Flags.string({helpGroup: 'KIND', description: 'with --pause: how many instances (default 1)'}),
    'jwks-unavailable': Flags.boolean({helpGroup: 'KIND', description: 'the service\'s (or the ingress\'s) jwksUri fetches fail: cached keys keep verifying, a new key is not learnt'}),
    cert: Flags.string({helpGroup: 'KIND', description: "the service's instances present a bad certificate: expired, untrusted (from another CA) or wrong-identity (another service's SPIFFE ID); `mesh certs` shows it"}),
    percent: Flags.string({helpGroup: 'SELECT', description: 'hit this share of matching requests, 0 to 100 (default 100)'}),
    first: Flags.string({helpGroup: 'SELECT', description: 'hit only the first N matching requests, then pass (tests a client\'s retries)'}),
    from: Flags.string({helpGroup: 'SELECT', description: 'only requests from this service (or ingress): one edge'}),
    header: Flags.string({helpGroup: 'SELECT', description: 'only requests carrying this header, name=value'}),
    path: Flags.string({helpGroup: 'SELECT', description: 'only requests whose path starts with this prefix'}),
    seed: Flags.string({helpGroup: 'SELECT', description: 'seed the dice: the same seed hits the same requests in a rerun'}),
    at: Flags.string({helpGroup: 'SELECT', options: ['callee', 'caller'], description: 'where the fault acts (default callee)'}),
    duration: Flags.string({helpGroup: 'SELECT', description: 'remove the fault by itself after this long, e.g. 60s'}),
  }

  async run(): Promise<FaultInfo> {
    const {args, flags} = await this.parse(InjectFault, withOptionalValues(this.argv))
    // Check the flags before reaching for the mesh, then again with its names so a typo lists the known ones.
    parseFaultFlags(args.target, flags)
    const client = this.connect(flags.file)
    const status = await client.status()
    const known = Object.fromEntries(status.services.map((s) => [s.name, s.versions.map((v) => v.name)]))
    const fault = await client.injectFault(parseFaultFlags(args.target, flags, known))
    if (!this.jsonEnabled()) this.log(describeInjected(fault))
    return fault
  }
}

/** 'f3 delay 300ms ±50ms on payments — 30%, from cart; for 60s' and, for kill / pause, the instances. */
export function describeInjected(f: FaultInfo): string {
  const selectors = describeSelectors(f)
  const head = `${chalk.bold(f.id)} ${describeFault(f)} on ${chalk.cyan(faultTarget(f))}`
  if (f.kind === 'kill') return `${head}: killed ${f.instances?.join(', ') || 'nothing'} (SIGKILL; the supervisor restarts them)`
  if (f.kind === 'cert') return `${head}: its instances present it on every connection; ${f.durationMs !== undefined ? `for ${formatDuration(f.durationMs)}` : 'until `mesh clear-faults ' + f.id + '`'}`
  if (f.kind === 'pause') return `${head}: paused ${f.instances?.join(', ') || 'nothing'} (SIGSTOP; SIGCONT in ${formatDuration(f.pauseMs ?? 0)})`
  const lifetime = f.durationMs !== undefined ? `for ${formatDuration(f.durationMs)}` : 'until `mesh clear-faults ' + f.id + '`'
  return `${head}${selectors.length ? ` — ${selectors.join(', ')}` : ''}; ${lifetime}`
}
