import {existsSync} from 'node:fs'
import {describe, test} from 'vitest'
import {describeLifecycle} from './lifecycle-cases.js'

// Linux's /proc: the table the platform picks there.
if (existsSync('/proc/self/stat')) describeLifecycle('proc')
else describe.skip('lifecycle under the proc process table (no /proc here)', () => test('skipped', () => undefined))
