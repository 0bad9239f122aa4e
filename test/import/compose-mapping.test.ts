// Each compose field and what it becomes in mesh.yaml (or which loss says it did not), one
// at a time, through parseCompose and composeToMesh; every result is checked to validate.
import {describe, expect, test} from 'vitest'
import {ownHttpGet, shellWord} from '../../src/sim/import/compose-to-mesh.js'
import {importText} from './compose-helpers.js'

const node = (body: string) => `services:\n  app:\n    image: node:20\n${body}`

describe('command and entrypoint', () => {
  test('a string command is the shell line as written', () => {
    const {mesh} = importText(node('    command: node server.js --port 3000\n'))
    expect(mesh.services.app.command).toBe('node server.js --port 3000')
  })

  test('a list is quoted for the shell, keeping $VAR for the mesh and $$ literal', () => {
    const {mesh} = importText(node(`    command: ["node", "-e", "console.log('hi there')", "$$HOME", "\${GREETING:-x}"]\n`))
    expect(mesh.services.app.command).toBe(`node -e "console.log('hi there')" "\\$$HOME" "\${GREETING:-x}"`)
  })

  test('entrypoint comes before command', () => {
    const {mesh} = importText(node('    entrypoint: [python3, -m]\n    command: http.server 8000\n'))
    expect(mesh.services.app.command).toBe('python3 -m http.server 8000')
  })

  test('a command that is only the image\'s arguments leaves an image-only service', () => {
    const {mesh, yaml} = importText('services:\n  db:\n    image: mariadb:10.6\n    command: --default-authentication-plugin=mysql_native_password\n')
    expect(mesh.services.db.command).toBeUndefined()
    expect(mesh.services.db.address).toBe('127.0.0.1:3306')
    expect(yaml).toContain('docker run -d --rm --name db -p 127.0.0.1:3306:3306 mariadb:10.6 --default-authentication-plugin=mysql_native_password')
  })

  test('a command run inside an image says it now runs on this machine', () => {
    const {lossLines} = importText(node('    command: node server.js\n'))
    expect(lossLines).toContainEqual(expect.stringMatching(/^3:12 services\.app\.image changed: the command ran inside image node:20; here it runs on this machine/))
  })

  test("the image is kept as image:, which mesh up ignores and mesh export runs; a stand-in gets none", () => {
    const {mesh} = importText(node('    command: node server.js\n'))
    expect(mesh.services.app.image).toBe('node:20')
    const stand = importText('services:\n  api:\n    image: ghcr.io/acme/api:1.4\n', {simulateImages: true})
    expect(stand.mesh.services.api.simulate).toBeDefined()
    expect(stand.mesh.services.api.image).toBeUndefined()
  })

  test('an image reference mesh.yaml refuses (a variable left unset in it) is said, not written', () => {
    const {mesh, lossLines} = importText('services:\n  app:\n    image: "${REGISTRY}/app"\n    command: node a.js\n', {env: {}})
    expect(mesh.services.app.image).toBeUndefined()
    expect(lossLines).toContainEqual(expect.stringMatching(/services\.app\.image dropped: image \/app is not an image reference mesh.yaml takes/))
  })
})

describe('environment and env_file', () => {
  test('a mapping and a list give the same env; a name without a value comes from the shell', () => {
    const fromMap = importText(node('    command: node a.js\n    environment:\n      LEVEL: debug\n      RETRIES: 3\n      TOKEN:\n'))
    const fromList = importText(node('    command: node a.js\n    environment: [LEVEL=debug, RETRIES=3, TOKEN]\n'))
    expect(fromMap.mesh.services.app.env).toEqual({LEVEL: 'debug', RETRIES: '3', TOKEN: '${TOKEN}'})
    expect(fromList.mesh.services.app.env).toEqual(fromMap.mesh.services.app.env)
  })

  test('variables in values are kept for the mesh to substitute', () => {
    const {mesh, losses} = importText(node('    command: node a.js\n    environment: {URL: "http://${HOST:-localhost}:80"}\n'))
    expect(mesh.services.app.env.URL).toBe('http://${HOST:-localhost}:80')
    expect(losses).toEqual(expect.not.arrayContaining([expect.objectContaining({path: 'services.app.environment.URL'})]))
  })

  test('PORT is the mesh\'s to set', () => {
    const {mesh, lossLines} = importText(node('    command: node a.js\n    environment: [PORT=3000]\n    expose: [3000]\n'))
    expect(mesh.services.app.env).toBeUndefined()
    expect(mesh.services.app.port).toBe(3000)
    expect(lossLines).toContainEqual(expect.stringContaining('services.app.environment[0] dropped: the mesh sets PORT for each instance (here 3000, from port:)'))
  })

  test('a value naming another service as a host says how the mesh reaches it', () => {
    const {lossLines} = importText('services:\n  web:\n    image: node:20\n    command: node web.js\n    environment: [DB=postgres://db:5432/app]\n    depends_on: [db]\n  db:\n    image: postgres:16\n')
    expect(lossLines).toContainEqual(expect.stringContaining('services.web.environment[0] changed: names "db", a host name on compose\'s network: here each dependency is reached at $DB_URL (or $DB_ADDR)'))
  })

  test('a dependency\'s <DEP>_URL is the mesh\'s to set', () => {
    const {mesh, lossLines} = importText('services:\n  web:\n    image: node:20\n    command: node web.js\n    environment: {API_URL: "http://api:3000", MODE: dev}\n    depends_on: [api]\n  api:\n    image: node:20\n    command: node api.js\n')
    expect(mesh.services.web.env).toEqual({MODE: 'dev'})
    expect(lossLines).toContainEqual(expect.stringContaining('services.web.environment.API_URL changed: the mesh sets API_URL itself'))
  })

  test('env_file becomes envFile, relative to mesh.yaml; an optional missing one is left out', () => {
    const {mesh, lossLines} = importText(node('    command: node a.js\n    env_file: [.env.app, {path: .env.local, required: false}]\n'), {files: {'.env.app': 'A=1\n'}})
    expect(mesh.services.app.envFile).toBe('.env.app')
    expect(lossLines).toContainEqual(expect.stringContaining('services.app.env_file[1] dropped: optional (required: false) and not there now'))
  })
})

describe('depends_on', () => {
  const three = (deps: string) => `services:\n  web:\n    image: node:20\n    command: node web.js\n    depends_on:${deps}\n  api:\n    image: node:20\n    command: node api.js\n  migrate:\n    image: node:20\n    command: node migrate.js\n`

  test('compose\'s short form waits for a start, so it is written with that condition', () => {
    const {mesh} = importText(three(' [api]'))
    expect(mesh.services.web.dependsOn).toEqual({api: {condition: 'service_started'}})
  })

  test('conditions and required are carried; the job waited on gets compose\'s restart: "no"', () => {
    const {mesh, yaml} = importText(three('\n      api: {condition: service_healthy, required: false}\n      migrate: {condition: service_completed_successfully}'))
    expect(mesh.services.web.dependsOn).toEqual({api: {condition: 'service_healthy', required: false}, migrate: {condition: 'service_completed_successfully'}})
    expect(mesh.services.migrate.restart).toBe('no')
    expect(yaml).toContain('restart: "no"')
  })

  test('all healthy and required: the list form, which waits for health', () => {
    const {mesh} = importText(three('\n      api: {condition: service_healthy}'))
    expect(mesh.services.web.dependsOn).toEqual(['api'])
  })

  test('completion of an image-only service cannot happen: it is waited for until started, and said so', () => {
    const {mesh, lossLines} = importText('services:\n  web:\n    image: node:20\n    command: node web.js\n    depends_on: {seed: {condition: service_completed_successfully, restart: true}}\n  seed:\n    image: redis\n')
    expect(mesh.services.web.dependsOn).toEqual({seed: {condition: 'service_started'}})
    expect(lossLines).toContainEqual(expect.stringContaining('services.web.depends_on.seed changed: "seed" is an address here and never completes'))
    expect(lossLines).toContainEqual(expect.stringContaining('services.web.depends_on.seed.restart dropped: the mesh does not restart a service when its dependency restarts'))
  })
})

describe('healthcheck', () => {
  test('CMD becomes health.command; interval, timeout and retries carry over', () => {
    const {mesh} = importText(node('    command: node a.js\n    healthcheck:\n      test: [CMD, node, check.js, "a b"]\n      interval: 1m30s\n      timeout: 500ms\n      retries: 5\n'))
    expect(mesh.services.app.health).toEqual({command: 'node check.js "a b"', interval: '90s', timeout: '500ms', unhealthyThreshold: 5})
  })

  test('a string is CMD-SHELL, kept as written', () => {
    const {mesh} = importText(node('    command: node a.js\n    healthcheck: {test: "pg_isready -U app || exit 1"}\n'))
    expect(mesh.services.app.health).toEqual({command: 'pg_isready -U app || exit 1'})
  })

  test('a curl or wget to the instance\'s own port is the mesh\'s HTTP check', () => {
    const curl = importText(node('    command: node a.js\n    expose: [3000]\n    healthcheck: {test: ["CMD-SHELL", "curl -f http://localhost:3000/healthz || exit 1"]}\n'))
    expect(curl.mesh.services.app.health).toEqual({path: '/healthz'})
    const wget = importText(node('    command: node a.js\n    ports: ["8080:3000"]\n    healthcheck: {test: [CMD, wget, --spider, -q, "http://127.0.0.1:3000/"]}\n'))
    expect(wget.mesh.services.app.health).toEqual({path: '/'})
  })

  test('a curl to another port stays a command', () => {
    const {mesh} = importText(node('    command: node a.js\n    expose: [3000]\n    healthcheck: {test: "curl -f http://localhost:9000/metrics"}\n'))
    expect(mesh.services.app.health).toEqual({command: 'curl -f http://localhost:9000/metrics'})
  })

  test('NONE, disable and start_period are said, not silently dropped', () => {
    const {mesh, lossLines} = importText(node('    command: node a.js\n    healthcheck: {test: [NONE], start_period: 30s}\n'))
    expect(mesh.services.app.health).toBeUndefined()
    expect(lossLines).toContainEqual(expect.stringMatching(/services\.app\.healthcheck\.test changed: compose checks nothing/))
    expect(lossLines).toContainEqual(expect.stringMatching(/services\.app\.healthcheck\.start_period changed: not needed: until an instance first passes/))
  })

  test('an image-only service\'s check ran in its container: the address is checked by TCP connect', () => {
    const {mesh, lossLines} = importText('services:\n  db:\n    image: postgres\n    healthcheck: {test: [CMD, pg_isready]}\n')
    expect(mesh.services.db.health).toBeUndefined()
    expect(lossLines).toContainEqual(expect.stringContaining('services.db.healthcheck changed: ran inside the container'))
  })
})

describe('profiles, restart, replicas, stop_grace_period, working_dir', () => {
  test('carried as written', () => {
    const {mesh} = importText(node('    command: node a.js\n    profiles: [debug, tools]\n    restart: on-failure:3\n    deploy: {replicas: 3}\n    stop_grace_period: 1m30s\n    working_dir: ./app\n'))
    expect(mesh.services.app).toMatchObject({profiles: ['debug', 'tools'], restart: 'on-failure:3', replicas: 3, stopGracePeriod: '90s', cwd: 'app'})
  })

  test('scale: and deploy.restart_policy, the older spellings', () => {
    const {mesh} = importText(node('    command: node a.js\n    scale: 2\n    deploy: {restart_policy: {condition: on-failure, max_attempts: 4}}\n'))
    expect(mesh.services.app).toMatchObject({replicas: 2, restart: 'on-failure:4'})
  })

  test('no restart: the mesh\'s always, said out loud', () => {
    const {mesh, lossLines} = importText(node('    command: node a.js\n'))
    expect(mesh.services.app.restart).toBeUndefined()
    expect(lossLines).toContainEqual(expect.stringMatching(/^2:3 services\.app changed: compose restarts nothing by default/))
  })

  test('a working_dir inside a bind mount is the mount\'s source; one inside the image is lost', () => {
    const mounted = importText(node('    command: node a.js\n    volumes: ["./src:/app"]\n    working_dir: /app/server\n'))
    expect(mounted.mesh.services.app.cwd).toBe('src/server')
    const inside = importText(node('    command: node a.js\n    working_dir: /srv\n'))
    expect(inside.mesh.services.app.cwd).toBeUndefined()
    expect(inside.lossLines).toContainEqual(expect.stringContaining('services.app.working_dir dropped: /srv is a directory inside the container'))
  })

  test('replicas keep the mesh\'s $PORT: a fixed port is one instance', () => {
    const {mesh, lossLines} = importText(node('    command: node a.js\n    expose: [3000]\n    deploy: {replicas: 2}\n'))
    expect(mesh.services.app.port).toBeUndefined()
    expect(lossLines).toContainEqual(expect.stringContaining('it listened on 3000 in each of its 2 containers: the mesh gives each instance a port in $PORT'))
  })
})

describe('ports and the ingress', () => {
  test('the published service no one depends on is the ingress\'s; the others get a suggested route', () => {
    const {mesh, yaml} = importText('services:\n  api:\n    image: node:20\n    command: node api.js\n    ports: ["8081:3000"]\n  web:\n    image: node:20\n    command: node web.js\n    ports: ["8080:3000"]\n    depends_on: [api]\n')
    expect(mesh.ingress).toEqual({port: 8080, routes: [{prefix: '/', service: 'web'}]})
    expect(mesh.services.web.port).toBe(3000)
    expect(mesh.services.api.port).toBeUndefined()
    expect(yaml).toContain('# api was published on 8081: route to it with {prefix: /api, service: api, rewrite: /}')
  })

  test('a privileged published port moves the ingress up, and the service keeps its own port', () => {
    const {mesh, lossLines} = importText(node('    command: node a.js\n    ports: ["80:8080"]\n'))
    expect(mesh.ingress?.port).toBe(8081)
    expect(mesh.services.app.port).toBe(8080)
    expect(lossLines).toContainEqual(expect.stringContaining('services.app.ports[0] changed: published on 80, a privileged port: the mesh\'s ingress listens on 8081 instead'))
  })

  test('host IPs: 127.0.0.1 is the mesh\'s own, any other is said; "IP::PORT" publishes on a port compose picks', () => {
    const local = importText(node('    command: node a.js\n    ports: ["127.0.0.1:8080:3000"]\n'))
    expect(local.mesh.ingress?.port).toBe(8080)
    expect(local.lossLines.filter((l) => l.includes('host_ip'))).toEqual([])
    const any = importText(node('    command: node a.js\n    ports: ["0.0.0.0:8080:3000", "127.0.0.1::4000"]\n'))
    expect(any.lossLines).toContainEqual(expect.stringContaining('services.app.ports[0] changed: host_ip 0.0.0.0: the mesh listens on 127.0.0.1 only'))
    expect(any.lossLines).toContainEqual(expect.stringContaining('services.app.ports[1] dropped: published on a port docker picks'))
    expect(any.mesh.ingress?.port).toBe(8080)
  })

  test('udp and ranges are said', () => {
    const {lossLines} = importText(node('    command: node a.js\n    ports: ["53:53/udp", "9000-9005:9000-9005"]\n'))
    expect(lossLines).toContainEqual(expect.stringContaining('services.app.ports[0] dropped: udp ports'))
    expect(lossLines).toContainEqual(expect.stringContaining('services.app.ports[1] dropped: a port range'))
  })
})

describe('image-only services', () => {
  test('an address with a comment saying how to run it; a database is protocol: tcp', () => {
    const {mesh, yaml, services, lossLines} = importText('services:\n  cache:\n    image: redis:7\n    ports: ["6380:6379"]\n    environment: {REDIS_ARGS: "--save 60 1"}\n    restart: always\n')
    expect(mesh.services.cache).toEqual({address: '127.0.0.1:6380', image: 'redis:7', protocol: 'tcp'})
    expect(yaml).toContain('# cache: image redis:7, which the mesh does not run. Start it with:\n  #   docker run -d --rm --name cache -p 127.0.0.1:6380:6379 -e "REDIS_ARGS=--save 60 1" --restart always redis:7\n')
    expect(services).toEqual([{compose: 'cache', name: 'cache', as: 'address'}])
    // export runs the image on the address's port: where the container listens instead is said.
    expect(lossLines).toContainEqual(expect.stringMatching(/^3:12 services\.cache\.image changed: mesh export runs image: in a pod listening on the address's port, 6380; the container listens on 6379/))
  })

  test('a build says how to build it', () => {
    const {yaml} = importText('services:\n  site:\n    build: ./site\n    ports: ["8080:80"]\n')
    expect(yaml).toContain('#   docker build -t site site\n  #   docker run -d --rm --name site -p 127.0.0.1:8081:80 site\n')
  })

  test('--simulate-images: a simulate: stand-in, said to be one', () => {
    const {mesh, lossLines} = importText('services:\n  cache:\n    image: redis:7\n', {simulateImages: true})
    expect(mesh.services.cache).toEqual({simulate: {}})
    expect(lossLines).toContainEqual(expect.stringContaining('services.cache.image changed: a simulated HTTP stand-in (--simulate-images)'))
  })

  test('no port anywhere and no known image: a stand-in, with why', () => {
    const {mesh, lossLines} = importText('services:\n  worker:\n    image: example/worker\n')
    expect(mesh.services.worker).toEqual({simulate: {}})
    expect(lossLines).toContainEqual(expect.stringContaining('compose names no port it listens on, so no address: can be given'))
  })
})

describe('names and what is not carried over', () => {
  test('service names become DNS labels, references follow', () => {
    const {mesh, lossLines} = importText('services:\n  My_App:\n    image: node:20\n    command: node a.js\n    depends_on: [ingress]\n  ingress:\n    image: node:20\n    command: node b.js\n')
    expect(Object.keys(mesh.services)).toEqual(['my-app', 'ingress-service'])
    expect(mesh.services['my-app'].dependsOn).toEqual({'ingress-service': {condition: 'service_started'}})
    expect(lossLines).toContainEqual(expect.stringContaining('services.My_App changed: named "my-app"'))
  })

  test('every unmapped key is a loss at its line, and named in a comment above the service', () => {
    const {yaml, lossLines} = importText('services:\n  app:\n    image: node:20\n    command: node a.js\n    volumes: [data:/data]\n    user: "1000"\n    deploy: {resources: {limits: {cpus: "0.5"}}}\nvolumes:\n  data:\n')
    expect(lossLines).toEqual(expect.arrayContaining([
      expect.stringMatching(/^5:5 services\.app\.volumes dropped: /),
      expect.stringMatching(/^6:5 services\.app\.user dropped: /),
      expect.stringMatching(/^7:14 services\.app\.deploy\.resources dropped: /),
      expect.stringMatching(/^8:1 volumes dropped: /),
    ]))
    expect(yaml).toContain('# not carried over from compose.yaml: volumes, user, deploy\n')
  })

  test('structural ${VAR}s are substituted on import, and said', () => {
    const {mesh, lossLines} = importText(node('    command: node a.js\n    deploy: {replicas: "${N:-2}"}\n'), {env: {}})
    expect(mesh.services.app.replicas).toBe(2)
    expect(lossLines).toContainEqual(expect.stringContaining('services.app.deploy.replicas changed: ${…} substituted on import: "${N:-2}" is written as "2"'))
  })

  test('the same compose gives the same bytes', () => {
    const text = 'name: shop\nservices:\n  web:\n    image: node:20\n    command: node web.js\n    ports: ["8080:3000"]\n    depends_on: [db]\n  db:\n    image: postgres\n'
    expect(importText(text).yaml).toBe(importText(text).yaml)
  })
})

test('shellWord quotes only what the shell would read differently', () => {
  expect(shellWord('--port=3000')).toBe('--port=3000')
  expect(shellWord('a b')).toBe('"a b"')
  expect(shellWord('say "hi" `now` \\ $X $$Y')).toBe('"say \\"hi\\" \\`now\\` \\\\ $X \\$$Y"')
})

test('ownHttpGet reads a GET to the instance\'s own port, and nothing else', () => {
  expect(ownHttpGet('curl -fsS http://localhost:3000/health', 3000)).toBe('/health')
  expect(ownHttpGet('curl -f http://localhost/ || exit 1', 80)).toBe('/')
  expect(ownHttpGet('curl -f http://localhost:3000/health', 8080)).toBeUndefined()
  expect(ownHttpGet('curl -f http://localhost:3000/health && rm -rf x', 3000)).toBeUndefined()
  expect(ownHttpGet('curl -X POST https://localhost:3000/health', 3000)).toBeUndefined()
})
