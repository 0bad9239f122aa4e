import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {describe, expect, it} from 'vitest'
import {formatIssue} from '../../src/sim/config/config-error.js'
import {describeLeftForInstances, substitute} from '../../src/sim/config/interpolate.js'
import {parseConfig} from '../../src/sim/config/load-config.js'
import {parsed, problems, yaml} from './helpers.js'

const vars: Record<string, string> = {HOST: 'db.local', EMPTY: '', PORT: '5432'}
const sub = (text: string) => substitute(text, (name) => vars[name])

describe('substitute (compose variable syntax)', () => {
  it('fills $VAR and ${VAR}; $$ is a literal $; a $ before no name stays', () => {
    expect(sub('postgres://$HOST:${PORT}/app')).toEqual({value: 'postgres://db.local:5432/app', unset: [], kept: []})
    expect(sub('price: $$5, 100$ and $ alone').value).toBe('price: $5, 100$ and $ alone')
    expect(sub('${MISSING}x$MISSING')).toEqual({value: 'x', unset: ['MISSING', 'MISSING'], kept: []})
  })

  it('defaults, alternatives and required variables, with and without the colon', () => {
    expect(sub('${MISSING:-fallback}').value).toBe('fallback')
    expect(sub('${EMPTY:-fallback}').value).toBe('fallback')
    expect(sub('${EMPTY-fallback}').value).toBe('')
    expect(sub('${MISSING:-${HOST}:${PORT}}').value).toBe('db.local:5432')
    expect(sub('${HOST:+set}/${MISSING:+set}/${EMPTY+set}').value).toBe('set//set')
    expect(sub('${HOST:?needed}').value).toBe('db.local')
    expect(() => sub('${MISSING:?set it in .env}')).toThrow('required variable MISSING is not set: set it in .env')
    expect(() => sub('${EMPTY:?}')).toThrow('required variable EMPTY is empty')
    expect(sub('${EMPTY?}').value).toBe('')
  })

  it('says what is wrong with a malformed reference', () => {
    expect(() => sub('${HOST')).toThrow('"${HOST" has no closing }; write $$ for a literal $')
    expect(() => sub('${1X}')).toThrow('"${1X}" does not start with a variable name')
    expect(() => sub('${HOST/x}')).toThrow('"${HOST/x}": expected }, :-, -, :?, ?, :+ or + after HOST')
  })
})

describe('${VAR} in mesh.yaml', () => {
  const source = yaml(
    'name: shop',
    'ingress:',
    '  port: ${INGRESS_PORT:-8080}',
    '  routes: [{prefix: /, service: api}]',
    'services:',
    '  api:',
    '    command: ${API_COMMAND:-node server.js}',
    '    replicas: ${REPLICAS:-1}',
    '    env:',
    '      DB_URL: "postgres://${DB_HOST:?the database host}/app"',
    '      PRICE: $$5',
    '      TAG: ${TAG}',
  )

  it('fills values from the environment; an unquoted value is read again (replicas: ${REPLICAS} is a number)', () => {
    const config = parsed(source, {DB_HOST: 'db:5432', REPLICAS: '3', TAG: '1.10'})
    const api = config.services[0]
    expect(api.versions[0]).toMatchObject({replicas: 3, workload: {command: 'node server.js'}, env: {DB_URL: 'postgres://db:5432/app', PRICE: '$5', TAG: '1.10'}})
    expect(config.ingress?.port).toBe(8080)
  })

  it('a required variable that is not set is an error at its value; an unset one a warning', () => {
    expect(problems(source)).toEqual([
      'mesh.yaml:10:15 services.api.env.DB_URL: required variable DB_HOST is not set: the database host',
      'mesh.yaml:12:12 services.api.env.TAG: warning: variable TAG is not set; using an empty string',
    ])
  })

  it('reads a .env beside mesh.yaml, as compose reads the project .env; the environment wins', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'meshsim-interpolate-'))
    try {
      writeFileSync(path.join(dir, '.env'), 'DB_HOST=from-file\nTAG=file-tag\n')
      const {config, issues} = parseConfig(source, path.join(dir, 'mesh.yaml'), {TAG: 'env-tag'})
      expect(issues.map((i) => formatIssue(i, dir))).toEqual([])
      expect(config!.services[0].versions[0].env).toMatchObject({DB_URL: 'postgres://from-file/app', TAG: 'env-tag'})
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })

  it('never touches keys, and a substituted value is checked like any other', () => {
    const keyed = yaml('name: shop', 'services:', '  $NAME:', '    command: x', '    replicas: ${REPLICAS}')
    expect(problems(keyed, {REPLICAS: 'many'})).toEqual([
      expect.stringMatching(/^mesh.yaml:3:3 services.\$NAME: /),
      'mesh.yaml:5:15 services.$NAME.replicas: expected a positive integer, got "many"',
    ])
  })
})

describe('variables the mesh gives each instance, in command: and health.command', () => {
  const command = (cmd: string, health = 'curl -sf localhost:$PORT/healthz') =>
    yaml(
      'name: shop',
      'services:',
      '  web:',
      `    command: ${cmd}`,
      '    dependsOn: [catalog, db, echo]',
      `    health: {command: "${health}"}`,
      '    versions:',
      '      v1: {}',
      '      v2: {command: "node v2.js --port ${PORT}"}',
      '  catalog: {simulate: {}}',
      '  db: {protocol: tcp, address: 127.0.0.1:5432}',
      '  echo: {protocol: grpc, command: node echo.js}',
      '  other: {command: node other.js $CATALOG_URL $PORT}',
    )

  it('are left as written for the instance\'s shell, `${…}` and all, whatever the environment says', () => {
    const source = command('node ratings.js $PORT ${MESH_INSTANCE} $CATALOG_URL ${DB_ADDR:-x} $ECHO_ADDR $ECHO_URL $HTTP_PROXY $no_proxy')
    const result = parseConfig(source, '/work/demo/mesh.yaml', {PORT: '1', MESH_INSTANCE: 'outer'})
    expect(result.issues.map((i) => formatIssue(i, '/work/demo'))).toEqual([
      // catalog is not other's dependency: the mesh gives other no CATALOG_URL.
      'mesh.yaml:13:20 services.other.command: warning: variable CATALOG_URL is not set; using an empty string',
    ])
    const [web, , , , other] = result.config!.services
    expect(web.versions.map((v) => (v.workload as {command: string}).command)).toEqual([
      'node ratings.js $PORT ${MESH_INSTANCE} $CATALOG_URL ${DB_ADDR:-x} $ECHO_ADDR $ECHO_URL $HTTP_PROXY $no_proxy',
      'node v2.js --port ${PORT}',
    ])
    expect(web.health).toMatchObject({command: 'curl -sf localhost:$PORT/healthz'})
    expect((other.versions[0].workload as {command: string}).command).toBe('node other.js  $PORT')
    expect([...result.leftForInstances!].map(([name, services]) => [name, [...services]])).toEqual([
      ['PORT', ['web', 'other']],
      ['MESH_INSTANCE', ['web']],
      ['CATALOG_URL', ['web']],
      ['DB_ADDR', ['web']],
      ['ECHO_ADDR', ['web']],
      ['ECHO_URL', ['web']],
      ['HTTP_PROXY', ['web']],
      ['no_proxy', ['web']],
    ])
  })

  it('only the names the mesh sets: an HTTP dependency has no _ADDR, a TCP one no _URL; the rest is substituted (and warned of) as anywhere', () => {
    const result = parseConfig(command('node app.js $CATALOG_ADDR $DB_URL $HOME_DIR'), '/work/demo/mesh.yaml', {})
    expect(result.issues.map((i) => formatIssue(i, '/work/demo'))).toEqual([
      'mesh.yaml:4:14 services.web.command: warning: variable CATALOG_ADDR is not set; using an empty string',
      'mesh.yaml:4:14 services.web.command: warning: variable DB_URL is not set; using an empty string',
      'mesh.yaml:4:14 services.web.command: warning: variable HOME_DIR is not set; using an empty string',
      'mesh.yaml:13:20 services.other.command: warning: variable CATALOG_URL is not set; using an empty string',
    ])
    expect((result.config!.services[0].versions[0].workload as {command: string}).command).toBe('node app.js')
  })

  it('elsewhere (env:, a port) $PORT is the shell\'s own, as before', () => {
    expect(parsed(yaml('name: shop', 'services:', '  web:', '    command: x', '    env: {MINE: $PORT}'), {PORT: '7'}).services[0].versions[0].env).toEqual({MINE: '7'})
  })

  it('describeLeftForInstances: the one line mesh validate prints', () => {
    expect(describeLeftForInstances({})).toBeUndefined()
    expect(describeLeftForInstances({PORT: ['web', 'api'], CATALOG_URL: ['web']})).toBe(
      "$PORT (web, api), $CATALOG_URL (web) in command: left for each instance's shell, which the mesh gives them when it starts one",
    )
  })
})
