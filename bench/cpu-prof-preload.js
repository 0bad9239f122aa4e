// `NODE_OPTIONS=--import=bench/cpu-prof-preload.js` with CPU_PROF_DIR set: this process (and
// every Node process it starts with the same environment) writes a V8 CPU profile into
// CPU_PROF_DIR when it exits normally. Node refuses --cpu-prof in NODE_OPTIONS; a mesh's
// processes are started by its daemon, out of reach of a command-line flag.
import {Session} from 'node:inspector'
import {mkdirSync, writeFileSync} from 'node:fs'
import path from 'node:path'

const dir = process.env.CPU_PROF_DIR
if (dir) {
  const session = new Session()
  session.connect()
  session.post('Profiler.enable')
  session.post('Profiler.setSamplingInterval', {interval: Number(process.env.CPU_PROF_INTERVAL_US ?? 500)})
  session.post('Profiler.start')
  process.once('exit', () => {
    // The in-process session answers synchronously, so the profile is written before the exit.
    session.post('Profiler.stop', (error, result) => {
      if (error) return
      mkdirSync(dir, {recursive: true})
      const name = `${path.basename(process.argv[1] ?? 'node', '.js')}-${process.env.MESH_INSTANCE ?? ''}-${process.pid}.cpuprofile`
      writeFileSync(path.join(dir, name), JSON.stringify(result.profile))
    })
  })
}
