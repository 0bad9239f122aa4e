// Prints instance logs with a coloured `instance |` prefix as they grow.
import {instanceLogFiles, LogFollower} from '../sim/control/log-files.js'
import type {MeshPaths} from '../sim/control/state-file.js'
import {prefixed} from './instance-colours.js'
import path from 'node:path'

const POLL_MS = 150

export function followLogs(
  paths: MeshPaths,
  services: string[],
  only: string | undefined,
  opts: {fromEnd: boolean; render?: (lines: string[]) => string[]},
  print: (line: string) => void,
): () => void {
  const files = instanceLogFiles(paths, services, only)
  const follower = new LogFollower(opts.fromEnd, files.values())
  let width = Math.max(8, ...[...files.keys()].map((k) => k.length))
  const tick = () => {
    // Instances can appear later (a deploy adds them); pick up their files too.
    for (const [instance, file] of instanceLogFiles(paths, services, only)) {
      if (!files.has(instance)) {
        files.set(instance, file)
        follower.add(file)
        width = Math.max(width, instance.length)
      }
    }
    follower.poll((file, line) => {
      for (const l of opts.render ? opts.render([line]) : [line]) print(prefixed(path.basename(file, '.log'), width, l))
    })
  }
  tick()
  const timer = setInterval(tick, POLL_MS)
  return () => {
    clearInterval(timer)
    tick()
  }
}
