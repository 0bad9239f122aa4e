// One thread of a sweep's pool (sweep-pool.ts): runs the cells it is given, one at a time.
import {parentPort} from 'node:worker_threads'
import {describeFailure} from './sweep-pool.js'
import {runSweepCell, type SweepJob} from './sweep-run.js'

const port = parentPort!
port.on('message', async ({index, job}: {index: number; job: SweepJob}) => {
  try {
    port.postMessage({index, ok: true, result: await runSweepCell(job)})
  } catch (error) {
    port.postMessage({index, ok: false, error: describeFailure(error)})
  }
})
