import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {describe, expect, it} from 'vitest'
import {formatIssue} from '../../src/sim/config/config-error.js'
import {substitute} from '../../src/sim/config/interpolate.js'
import {parseConfig} from '../../src/sim/config/load-config.js'
import {parsed, problems, yaml} from './helpers.js'

const vars: Record<string, string> = {HOST: 'db.local', EMPTY: '', PORT: '5432'}
const sub = (text: string) => substitute(text, (name) => vars[name])

describe('substitute (compose variable syntax)', () => {
  it('fills $VAR and ${VAR}; $$ is a literal $; a $ before no name stays', () => {
    expect(sub('postgres://$HOST:${PORT}/app')).toEqual({value: 'postgres://db.local:5432/app', unset: []})
    expect(sub('price: $$5, 100$ and $ alone').value).toBe('price: $5, 100$ and $ alone')
    expect(sub('${MISSING}x$MISSING')).toEqual({value: 'x', unset: ['MISSING', 'MISSING']})
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
