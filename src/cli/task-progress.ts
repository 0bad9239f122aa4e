// A listr2 spinner for one piece of work that may take seconds (`mesh apply` starting
// services and instances): on a terminal only; piped or with --json the work just runs.
import {Listr} from 'listr2'

export async function withProgress<T>(title: string, work: () => Promise<T>, show: boolean): Promise<T> {
  if (!show) return work()
  const pending = work()
  // The work's own error is the one to report; the spinner only mirrors it.
  await new Listr([{title, task: () => pending.then(() => undefined)}], {renderer: 'default', fallbackRenderer: 'simple', exitOnError: true})
    .run()
    .catch(() => undefined)
  return pending
}
