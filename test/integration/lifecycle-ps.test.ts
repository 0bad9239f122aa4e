import {describeLifecycle} from './lifecycle-cases.js'

// The portable table (`ps`), forced with MESH_PROCESS_TABLE=ps: the code a Mac runs.
describeLifecycle('ps')
