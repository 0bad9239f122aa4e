import {existsSync} from 'node:fs'
import {describeLifecycle} from './lifecycle-cases.js'

// Linux's /proc: the table the platform picks there.
describeLifecycle('proc', !existsSync('/proc/self/stat'))
