// One stable colour per instance, so interleaved logs stay readable.
import chalk, {type ChalkInstance} from 'chalk'

const PALETTE: ChalkInstance[] = [chalk.cyan, chalk.magenta, chalk.yellow, chalk.green, chalk.blue, chalk.redBright, chalk.cyanBright, chalk.magentaBright]

export function colourFor(name: string): ChalkInstance {
  let h = 0
  for (const ch of name) h = (h * 31 + ch.charCodeAt(0)) >>> 0
  return PALETTE[h % PALETTE.length]
}

export function prefixed(instance: string, width: number, line: string): string {
  return `${colourFor(instance)(instance.padEnd(width))} | ${line}`
}
