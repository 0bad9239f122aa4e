// Whether the openssl CLI is here: tests that let it judge certificates skip without it.
import {execFileSync} from 'node:child_process'

export const hasOpenssl = (() => {
  try {
    execFileSync('openssl', ['version'])
    return true
  } catch {
    return false
  }
})()
