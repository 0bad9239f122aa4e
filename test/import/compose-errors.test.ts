// A bad compose file is reported as a bad mesh.yaml is: every problem at once, each as
// `file:line:column path: what was expected`, and nothing is written.
import {existsSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {expect, test} from 'vitest'
import {ConfigError} from '../../src/sim/config/config-error.js'
import {importCompose} from '../../src/sim/import/import-compose.js'
import {composeIssues, tempDir} from './compose-helpers.js'

test('YAML syntax', () => {
  expect(composeIssues('services:\n  web:\n    image: [node\n')).toEqual([expect.stringMatching(/^compose\.yaml:4:1 /)])
})

test('no services', () => {
  expect(composeIssues('name: shop\n')).toEqual(['compose.yaml:1:1 expected services: a mapping of service names to their definitions, got a mapping'])
  expect(composeIssues('services: {}\n')).toEqual(['compose.yaml:1:11 services: expected services: a mapping of service names to their definitions, got a mapping'])
})

test('every problem of a file at once, each at its line with what was expected', () => {
  const issues = composeIssues(`services:
  web:
    image: node:20
    comand: node web.js
    ports: ["http:80"]
    healthcheck:
      test: [CMD]
      interval: 10
      retries: many
    depends_on:
      api: {condition: service_ready}
      cache: {condition: service_started}
    environment: {"MY-VAR": x}
    restart: sometimes
  api:
    image: node:20
    deploy: {replicas: -1}
    stop_grace_period: soon
  worker:
    command: node worker.js
volumez: {}
`)
  expect(issues).toEqual([
    'compose.yaml:4:5 services.web.comand: unknown key "comand"; did you mean "command"?',
    'compose.yaml:5:13 services.web.ports[0]: expected a port like "8080:80", "127.0.0.1:8080:80", "3000" or "53:53/udp", got "http:80"',
    'compose.yaml:7:14 services.web.healthcheck.test[0]: expected ["CMD", program, args...], ["CMD-SHELL", "a shell command"] or ["NONE"], got "CMD" with nothing after it',
    'compose.yaml:8:17 services.web.healthcheck.interval: expected a duration like 10s, 1m30s or 500ms, got 10',
    'compose.yaml:9:16 services.web.healthcheck.retries: expected a number of retries (0 or more), got "many"',
    'compose.yaml:11:24 services.web.depends_on.api.condition: expected one of service_started, service_healthy, service_completed_successfully, got "service_ready"; did you mean "service_healthy"?',
    'compose.yaml:12:7 services.web.depends_on.cache: service "cache" is not in this file',
    'compose.yaml:13:29 services.web.environment.MY-VAR: "MY-VAR" is not an environment variable name the mesh can set (letters, digits and _)',
    'compose.yaml:14:14 services.web.restart: expected one of no, always, on-failure, on-failure:N, unless-stopped, got "sometimes"',
    'compose.yaml:17:24 services.api.deploy.replicas: expected a number of replicas (0 or more), got -1',
    'compose.yaml:18:24 services.api.stop_grace_period: expected a duration like 10s, 1m30s or 500ms, got "soon"',
    'compose.yaml:19:3 services.worker: service "worker" has neither an image nor a build context; compose needs one (image: or build:)',
    'compose.yaml:21:1 volumez: unknown key "volumez"; did you mean "volumes"?',
  ])
})

test('a missing env_file is an error, as in compose, unless it says required: false', () => {
  expect(composeIssues('services:\n  web:\n    image: node:20\n    command: node a.js\n    env_file: [.env.web]\n')).toEqual([
    expect.stringMatching(/^compose\.yaml:5:16 services\.web\.env_file\[0\]: no such file: .*\.env\.web \(compose needs it too; write \{path: \.env\.web, required: false\} if it is optional\)$/),
  ])
})

test('a required variable that is not set is an error at its value', () => {
  expect(composeIssues('services:\n  web:\n    image: "node:${NODE_VERSION:?set NODE_VERSION}"\n')).toEqual([
    'compose.yaml:3:12 services.web.image: required variable NODE_VERSION is not set: set NODE_VERSION',
  ])
})

test('importCompose throws ConfigError (exit 2, each issue printed) and writes nothing', async () => {
  const dir = tempDir()
  writeFileSync(path.join(dir, 'compose.yaml'), 'services:\n  web:\n    image: node:20\n    stop_grace_period: 10\n')
  const out = path.join(dir, 'mesh.yaml')
  const error = await importCompose({composeFile: path.join(dir, 'compose.yaml'), out, env: {}}).catch((e: unknown) => e)
  expect(error).toBeInstanceOf(ConfigError)
  expect((error as ConfigError).code).toBe('MESH_CONFIG_INVALID')
  expect((error as ConfigError).hints).toEqual(['Fix these in compose.yaml (`docker compose config` reads it the same way), then import it again.'])
  expect(existsSync(out)).toBe(false)
})
