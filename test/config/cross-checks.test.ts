import {tmpdir} from 'node:os'
import {describe, expect, it} from 'vitest'
import {DIR, parsed, problems, yaml} from './helpers.js'

describe('cross-checks: references to services', () => {
  it('names an unknown service in dependsOn, calls and ingress routes, with did-you-mean', () => {
    const source = yaml(
      'name: shop',
      'ingress:',
      '  port: 8000',
      '  routes: [{prefix: /, service: fronted}]',
      'services:',
      '  frontend:',
      '    command: node server.js',
      '    dependsOn: [catalog, payments]',
      '  catalog:',
      '    simulate:',
      '      calls: [{service: inventroy}]',
      '  inventory:',
      '    simulate: {}',
    )
    expect(problems(source)).toEqual([
      'mesh.yaml:4:33 ingress.routes[0].service: unknown service "fronted"; did you mean "frontend"?',
      'mesh.yaml:8:26 services.frontend.dependsOn[1]: unknown service "payments"; known services: frontend, catalog, inventory',
      'mesh.yaml:11:25 services.catalog.simulate.calls[0].service: unknown service "inventroy"; did you mean "inventory"?',
    ])
  })

  it('finds a call written inside a version', () => {
    const source = yaml(
      'name: shop',
      'services:',
      '  catalog:',
      '    versions:',
      '      v1: {simulate: {}}',
      '      v2: {simulate: {calls: [{service: invntory}]}}',
      '  inventory: {simulate: {}}',
    )
    expect(problems(source)).toEqual(['mesh.yaml:6:41 services.catalog.versions.v2.simulate.calls[0].service: unknown service "invntory"; did you mean "inventory"?'])
  })

  it('treats a service with its own errors as known, so a typo is reported once', () => {
    const source = yaml('name: shop', 'services:', '  web: {command: x, dependsOn: [api]}', '  api: {replicas: -1, command: y}')
    expect(problems(source)).toEqual(['mesh.yaml:4:19 services.api.replicas: expected a positive integer, got -1'])
  })
})

describe('cross-checks: dependency cycles', () => {
  it('reports a cycle once, at the edge leaving its first service', () => {
    const source = yaml(
      'name: shop',
      'services:',
      '  a: {command: x, dependsOn: [b]}',
      '  b: {command: x, dependsOn: [c]}',
      '  c: {command: x, dependsOn: [a]}',
    )
    expect(problems(source)).toEqual(['mesh.yaml:3:31 services.a.dependsOn[0]: dependency cycle: a → b → c → a'])
  })

  it('starts the cycle at the first service in the file even when found from elsewhere', () => {
    const source = yaml(
      'name: shop',
      'services:',
      '  entry: {command: x, dependsOn: [b]}', // reaches the cycle through b
      '  a: {command: x, dependsOn: [b]}',
      '  b: {command: x, dependsOn: [a]}',
    )
    expect(problems(source)).toEqual(['mesh.yaml:4:31 services.a.dependsOn[0]: dependency cycle: a → b → a'])
  })

  it('counts simulated calls as edges, and a service calling itself', () => {
    const source = yaml(
      'name: shop',
      'services:',
      '  a: {simulate: {calls: [{service: b}]}}',
      '  b: {simulate: {calls: [{service: a}]}}',
      '  c: {command: x, dependsOn: [c]}',
    )
    expect(problems(source)).toEqual([
      'mesh.yaml:3:36 services.a.simulate.calls[0].service: dependency cycle: a → b → a',
      'mesh.yaml:5:31 services.c.dependsOn[0]: dependency cycle: c → c',
    ])
  })

  it('accepts a diamond (shared dependencies are not cycles)', () => {
    const config = parsed(
      yaml(
        'name: shop',
        'services:',
        '  a: {command: x, dependsOn: [b, c]}',
        '  b: {command: x, dependsOn: [d]}',
        '  c: {command: x, dependsOn: [d]}',
        '  d: {command: x}',
      ),
    )
    expect(config.services.map((s) => s.dependsOn)).toEqual([['b', 'c'], ['d'], ['d'], []])
  })
})

describe('cross-checks: ports', () => {
  it('reports the second use of a port, naming the first', () => {
    const source = yaml(
      'name: shop',
      'ingress: {port: 8000}',
      'services:',
      '  web: {command: x, port: 8000}',
      '  db: {address: 127.0.0.1:5432}',
      '  api: {command: y, port: 5432}',
      '  remote: {address: db.example.com:8000}', // not on this machine: no clash
    )
    expect(problems(source)).toEqual([
      'mesh.yaml:4:27 services.web.port: port 8000 is already used by ingress.port',
      'mesh.yaml:6:27 services.api.port: port 5432 is already used by services.db.address',
    ])
  })

  it('accepts ingress port 0 (the OS picks) and keeps it 0 for the daemon to bind', () => {
    const config = parsed(yaml('name: shop', 'ingress: {port: 0}', 'services:', '  web: {command: x, port: 3000}'))
    expect(config.ingress).toMatchObject({port: 0})
  })

  it('rejects a fixed port or an address with more than one replica', () => {
    const source = yaml(
      'name: shop',
      'services:',
      '  web:',
      '    command: x',
      '    port: 3000',
      '    replicas: 2',
      '  db:',
      '    address: localhost:5432',
      '    replicas: 3',
    )
    expect(problems(source)).toEqual([
      'mesh.yaml:5:11 services.web.port: a fixed port allows only one instance, but replicas is 2; remove port or set replicas: 1',
      'mesh.yaml:8:14 services.db.address: an address is one instance the mesh does not start, but replicas is 3; set replicas: 1',
    ])
  })

  it('catches a service-level port that every version would bind', () => {
    const source = yaml('name: shop', 'services:', '  web:', '    command: x', '    port: 3000', '    versions: {v1: {}, v2: {}}')
    expect(problems(source)).toEqual(['mesh.yaml:5:11 services.web.port: port 3000 would be bound by each of versions v1, v2; set port per version'])
  })

  it('accepts a port per version', () => {
    const config = parsed(yaml('name: shop', 'services:', '  web:', '    command: x', '    versions: {v1: {port: 3001}, v2: {port: 3002}}'))
    expect(config.services[0].versions.map((v) => v.port)).toEqual([3001, 3002])
  })
})

describe('cross-checks: versions, weights, routes, mirror', () => {
  const catalog = (...policy: string[]) =>
    yaml('name: shop', 'services:', '  catalog:', '    simulate: {}', '    versions: {v1: {}, v2: {}}', '    policy:', ...policy.map((l) => `      ${l}`))

  it('wants weights to sum to 100, at the weights mapping', () => {
    expect(problems(catalog('weights: {v1: 90, v2: 5}'))).toEqual(['mesh.yaml:7:16 services.catalog.policy.weights: weights must sum to 100, got 95'])
    expect(parsed(catalog('weights: {v1: 90, v2: 10}')).services[0].policy.weights).toEqual({v1: 90, v2: 10})
    expect(parsed(catalog('weights: {v1: 33.3, v2: 66.7}')).services[0].policy.weights).toEqual({v1: 33.3, v2: 66.7})
  })

  it('names an unknown version at its key in weights, and in routes and mirror', () => {
    expect(
      problems(
        catalog(
          'weights: {v1: 90, v3: 10}', // line 7
          'routes: [{match: {headers: {x-canary: "true"}}, version: v4}]', // line 8
          'mirror: {version: blue}', // line 9
        ),
      ),
    ).toEqual([
      'mesh.yaml:7:25 services.catalog.policy.weights.v3: unknown version "v3" of service "catalog"; did you mean "v1"?',
      'mesh.yaml:8:64 services.catalog.policy.routes[0].version: unknown version "v4" of service "catalog"; did you mean "v1"?',
      'mesh.yaml:9:25 services.catalog.policy.mirror.version: unknown version "blue" of service "catalog"; known versions: v1, v2',
    ])
  })

  it('knows the implicit v1 of a service without versions', () => {
    const config = parsed(yaml('name: shop', 'services:', '  catalog:', '    simulate: {}', '    policy: {weights: {v1: 100}, mirror: {version: v1, percent: 5}}'))
    expect(config.services[0].policy).toMatchObject({weights: {v1: 100}, mirror: {version: 'v1', percent: 5}})
  })
})

describe('cross-checks: warnings', () => {
  it('warns about a service nothing reaches, only when the mesh has an ingress', () => {
    const body = ['services:', '  web: {simulate: {calls: [{service: api}]}}', '  api: {simulate: {}}', '  batch: {command: x}']
    expect(problems(yaml('name: shop', 'ingress: {port: 0, routes: [{prefix: /, service: web}]}', ...body))).toEqual([
      'mesh.yaml:6:3 services.batch: warning: service "batch" is not reached: no ingress route leads to it and no service depends on it',
    ])
    expect(problems(yaml('name: shop', ...body))).toEqual([])
  })
})

describe('one-shot jobs: restart and dependsOn conditions (compose)', () => {
  const jobMesh = (migrate: string, condition = 'service_completed_successfully') =>
    yaml(
      'name: shop',
      'ingress: {port: 8000, routes: [{prefix: /, service: api}]}',
      'services:',
      '  migrate:',
      `    ${migrate}`,
      '    restart: "no"',
      '  db: {command: node db.js}',
      '  api:',
      '    command: node api.js',
      '    dependsOn:',
      `      migrate: {condition: ${condition}}`,
      '      db: {condition: service_started}',
      '  seed: {command: node seed.js, restart: on-failure}',
    )

  it('reads compose\'s mapping form of dependsOn and the restart policy', () => {
    const config = parsed(jobMesh('command: node migrate.js'))
    const api = config.services.find((s) => s.name === 'api')!
    expect(api.dependsOn).toEqual(['migrate', 'db'])
    expect(api.dependsOnConditions).toEqual({migrate: 'service_completed_successfully', db: 'service_started'})
    expect(config.services.find((s) => s.name === 'migrate')!.restart).toBe('no')
    expect(config.services.find((s) => s.name === 'seed')!.restart).toBe('on-failure')
    // compose's retry cap.
    const capped = parsed(jobMesh('command: node migrate.js').replace('restart: "no"', 'restart: on-failure:3')).services.find((s) => s.name === 'migrate')!
    expect([capped.restart, capped.maxRestarts]).toEqual(['on-failure', 3])
    // The default (always) and the list form leave both out; a standalone job is not "unreached".
    expect(config.services.find((s) => s.name === 'db')).not.toHaveProperty('restart')
    expect(parsed(yaml('name: x', 'services:', '  a: {command: a, dependsOn: [b]}', '  b: {command: b}')).services[0]).not.toHaveProperty('dependsOnConditions')
    expect(problems(jobMesh('command: node migrate.js'))).toEqual([])
  })

  it('refuses a completion wait on a service that never completes, at the dependsOn entry', () => {
    expect(problems(jobMesh('command: node migrate.js').replace('restart: "no"', 'restart: always'))).toEqual([
      'mesh.yaml:11:16 services.api.dependsOn.migrate: "migrate" is restarted whenever it exits (restart: always, the default), so it never completes; give it restart: "no" (or on-failure)',
    ])
    expect(problems(jobMesh('simulate: {}'))).toEqual([
      'mesh.yaml:11:16 services.api.dependsOn.migrate: "migrate" is simulated: it serves until mesh down, so it never completes',
    ])
  })

  it('names a wrong condition or restart value with did-you-mean', () => {
    expect(problems(jobMesh('command: node migrate.js', 'service_completed'))).toEqual([
      'mesh.yaml:11:28 services.api.dependsOn.migrate.condition: expected one of service_started, service_healthy, service_completed_successfully, got "service_completed"; did you mean "service_completed_successfully"?',
    ])
    expect(problems(jobMesh('command: node migrate.js').replace('restart: "no"', 'restart: never'))).toEqual([
      'mesh.yaml:6:14 services.migrate.restart: expected one of always, on-failure, on-failure:N (at most N restarts), no, unless-stopped, got "never"',
    ])
  })
})

describe('policy.authorization', () => {
  const mesh = (rules: string, extra = '') =>
    yaml(
      'name: shop',
      'ingress: {port: 8000, routes: [{prefix: /, service: frontend}]}',
      'services:',
      '  frontend: {command: node web.js, dependsOn: [payments]}',
      '  payments:',
      '    command: node payments.js',
      '    policy:',
      '      authorization:',
      `        ${rules}`,
      ...(extra ? [extra] : []),
    )

  it('reads allow and deny rules (methods upper-cased)', () => {
    const config = parsed(mesh('allow: [{from: [frontend], methods: [get, POST]}, {from: [ingress], paths: [/public/*]}]', '        deny: [{paths: ["*.php"]}]'))
    expect(config.services[1].policy.authorization).toEqual({
      allow: [{from: ['frontend'], methods: ['GET', 'POST']}, {from: ['ingress'], paths: ['/public/*']}],
      deny: [{paths: ['*.php']}],
    })
  })

  it('names an unknown caller with did-you-mean, and a path Istio would not read', () => {
    expect(problems(mesh('allow: [{from: [fronted, ingres]}, {paths: [/admin]}]'))).toEqual([
      'mesh.yaml:9:25 services.payments.policy.authorization.allow[0].from[0]: unknown caller "fronted"; did you mean "frontend"?',
      'mesh.yaml:9:34 services.payments.policy.authorization.allow[0].from[1]: unknown caller "ingres"; did you mean "ingress"?',
    ])
    expect(problems(mesh('allow: [{from: [frontend]}, {paths: [admin]}]'))).toEqual([
      'mesh.yaml:9:46 services.payments.policy.authorization.allow[1].paths[0]: expected a path like /items, /items/* or *.json, got "admin"',
    ])
  })

  it("reads Istio's identity and token fields, not* forms and when conditions", () => {
    const config = parsed(
      mesh(
        'allow: [{principals: [cluster.local/ns/shop/sa/frontend], notRequestPrincipals: [mesh/bob], notMethods: [delete], notPaths: [/admin/*], when: [{key: "request.auth.claims[groups]", values: [admin, 7]}, {key: source.namespace, notValues: [other]}]}]',
        '        deny: [{notPrincipals: ["*"]}, {requestPrincipals: ["*"], notPrincipals: ["spiffe://cluster.local/ns/shop/sa/*"]}]',
      ),
    )
    expect(config.services[1].policy.authorization).toEqual({
      allow: [
        {
          principals: ['cluster.local/ns/shop/sa/frontend'],
          notRequestPrincipals: ['mesh/bob'],
          notMethods: ['DELETE'],
          notPaths: ['/admin/*'],
          when: [
            {key: 'request.auth.claims[groups]', values: ['admin', '7']},
            {key: 'source.namespace', notValues: ['other']},
          ],
        },
      ],
      deny: [{notPrincipals: ['*']}, {requestPrincipals: ['*'], notPrincipals: ['spiffe://cluster.local/ns/shop/sa/*']}],
    })
  })

  it('refuses a when key that is not one of Istio\'s, naming the keys, and a condition without values', () => {
    expect(problems(mesh('allow: [{when: [{key: "request.auth.claim[groups]", values: [admin]}]}]'))).toEqual([
      'mesh.yaml:9:31 services.payments.policy.authorization.allow[0].when[0].key: "request.auth.claim[groups]" is not one of Istio\'s condition keys; the keys are request.headers[<name>], request.auth.claims[<claim>] (nested: [<claim>][<field>]), request.auth.principal, request.auth.audiences, request.auth.presenter, source.principal, source.namespace',
    ])
    expect(problems(mesh('allow: [{when: [{key: source.ip, values: [10.0.0.1]}]}]'))).toEqual([
      "mesh.yaml:9:31 services.payments.policy.authorization.allow[0].when[0].key: source.ip is Istio's, but not judged here (every caller of a local mesh is 127.0.0.1); the keys are request.headers[<name>], request.auth.claims[<claim>] (nested: [<claim>][<field>]), request.auth.principal, request.auth.audiences, request.auth.presenter, source.principal, source.namespace",
    ])
    expect(problems(mesh('allow: [{when: [{key: "request.headers[x-a]"}]}]'))).toEqual([
      'mesh.yaml:9:25 services.payments.policy.authorization.allow[0].when[0]: expected values or notValues (or both)',
    ])
  })

  it('warns about a rule on the token where no jwtRule checks one', () => {
    expect(problems(mesh('allow: [{requestPrincipals: ["*"]}, {from: [frontend], when: [{key: "request.auth.claims[g]", values: [a]}]}]', '        deny: [{notRequestPrincipals: ["*"]}]'))).toEqual([
      'mesh.yaml:9:18 services.payments.policy.authorization.allow[0].requestPrincipals: warning: no jwtRule checks a token on calls to "payments" (add policy.requestAuthentication.jwtRules), so no request has a request principal: this rule never matches',
      'mesh.yaml:9:77 services.payments.policy.authorization.allow[1].when[0].key: warning: no jwtRule checks a token on calls to "payments" (add policy.requestAuthentication.jwtRules), so request.auth.claims[g] is always absent',
      'mesh.yaml:10:17 services.payments.policy.authorization.deny[0].notRequestPrincipals: warning: no jwtRule checks a token on calls to "payments" (add policy.requestAuthentication.jwtRules), so no request has a request principal: this matches every request',
    ])
    expect(problems(mesh('allow: [{requestPrincipals: ["*"]}]', '      requestAuthentication: {jwtRules: [{issuer: mesh}]}'))).toEqual([])
  })

  it('says nothing of missing jwtRules when the ingress that has them was dropped for an error of its own', () => {
    const file = [
      'name: shop',
      'ingress:',
      '  port: 8000',
      '  routes: [{prefix: /, service: api}]',
      '  tls: {port: 8443, cert: missing.pem, key: missing.key}',
      '  requestAuthentication: {jwtRules: [{issuer: mesh}]}',
      'services:',
      '  api:',
      '    simulate: {}',
      '    policy:',
      '      authorization: {allow: [{requestPrincipals: ["*"]}]}',
    ].join('\n')
    const found = problems(file)
    expect(found.some((p) => p.includes('ingress.tls.cert') && p.includes('does not exist'))).toBe(true)
    expect(found.filter((p) => p.includes('no jwtRule checks'))).toEqual([])
  })

  it('warns about a principal of this mesh that names no service', () => {
    expect(problems(mesh('allow: [{principals: [cluster.local/ns/shop/sa/frontend, cluster.local/ns/shop/sa/fronted, cluster.local/ns/other/sa/x]}, {from: [frontend]}]'))).toEqual([
      'mesh.yaml:9:66 services.payments.policy.authorization.allow[0].principals[1]: warning: "cluster.local/ns/shop/sa/fronted" names no service of mesh "shop"; did you mean "frontend"?',
    ])
  })

  it('warns when a declared call can only be refused', () => {
    expect(problems(mesh('allow: [{from: [ingress]}]'))).toEqual([
      'mesh.yaml:8:7 services.payments.policy.authorization: warning: "frontend" depends on "payments", but this policy refuses every call from "frontend" (403 RBAC)',
    ])
    expect(problems(mesh('deny: [{from: [frontend], methods: [DELETE]}]'))).toEqual([])
  })

  it('warns about a path no normalized request path can match, and says what to write', () => {
    expect(problems(mesh('deny: [{paths: [/admin//*, /a/./b, "/%7Euser", /ok/*, "*.php"]}, {paths: ["/a%zz"]}]'))).toEqual([
      'mesh.yaml:9:25 services.payments.policy.authorization.deny[0].paths[0]: warning: /admin//* never matches: request paths are normalized first (dot segments, repeated slashes, %-escapes of unreserved characters and of / and \\), so write /admin/*',
      'mesh.yaml:9:36 services.payments.policy.authorization.deny[0].paths[1]: warning: /a/./b never matches: request paths are normalized first (dot segments, repeated slashes, %-escapes of unreserved characters and of / and \\), so write /a/b',
      'mesh.yaml:9:44 services.payments.policy.authorization.deny[0].paths[2]: warning: /%7Euser never matches: request paths are normalized first (dot segments, repeated slashes, %-escapes of unreserved characters and of / and \\), so write /~user',
      'mesh.yaml:9:83 services.payments.policy.authorization.deny[1].paths[0]: warning: /a%zz never matches: the mesh refuses such a request path with 400 (an invalid percent-encoding "%zz" in the path "/a%zz": % must be followed by two hex digits (a literal % is %25))',
    ])
  })

  it('warns the same about ingress and traffic route prefixes', () => {
    const source = yaml(
      'name: shop',
      'ingress: {port: 8000, routes: [{prefix: /, service: api}, {prefix: /api/./v1, service: api}]}',
      'services:',
      '  api:',
      '    versions: {v1: {command: node v1.js}, v2: {command: node v2.js}}',
      '    policy: {routes: [{match: {pathPrefix: "/beta%2F"}, version: v2}]}',
    )
    expect(problems(source)).toEqual([
      'mesh.yaml:2:68 ingress.routes[1].prefix: warning: /api/./v1 never matches: request paths are normalized first (dot segments, repeated slashes, %-escapes of unreserved characters and of / and \\), so write /api/v1',
      'mesh.yaml:6:44 services.api.policy.routes[0].match.pathPrefix: warning: /beta%2F never matches: request paths are normalized first (dot segments, repeated slashes, %-escapes of unreserved characters and of / and \\), so write /beta/',
    ])
  })

  it('takes only identity fields for a protocol: tcp service', () => {
    const tcp = (rule: string) =>
      yaml('name: shop', 'services:', '  app: {command: node app.js, dependsOn: [db]}', '  db:', '    protocol: tcp', '    command: node db.js', `    policy: {authorization: {allow: [${rule}]}}`)
    const only = 'its authorization rules take only from, principals, notPrincipals and when on source.principal or source.namespace'
    expect(problems(tcp('{from: [app], paths: [/x]}'))).toEqual([`mesh.yaml:7:52 services.db.policy.authorization.allow[0].paths: a protocol: tcp connection has no path; ${only}`])
    expect(problems(tcp('{notMethods: [GET], requestPrincipals: ["*"], when: [{key: "request.headers[x]", values: [a]}, {key: source.namespace, values: [shop]}]}'))).toEqual([
      `mesh.yaml:7:39 services.db.policy.authorization.allow[0].notMethods: a protocol: tcp connection has no method; ${only}`,
      `mesh.yaml:7:58 services.db.policy.authorization.allow[0].requestPrincipals: a protocol: tcp connection has no token; ${only}`,
      `mesh.yaml:7:97 services.db.policy.authorization.allow[0].when[0].key: a protocol: tcp connection has no HTTP request or token; ${only}`,
    ])
    expect(problems(tcp('{principals: [cluster.local/ns/shop/sa/app], when: [{key: source.principal, values: ["*"]}]}'))).toEqual([])
  })
})

describe('watch (mesh up --watch)', () => {
  it('resolves watch paths against mesh.yaml and names one that does not exist', () => {
    const tmp = tmpdir()
    const config = parsed(yaml('name: x', 'services:', `  web: {command: node server.js, watch: [${tmp}]}`))
    expect(config.services[0].watch).toEqual([tmp])
    expect(problems(yaml('name: x', 'services:', '  web: {command: node server.js, watch: [src]}'))).toEqual([
      `mesh.yaml:3:42 services.web.watch[0]: src does not exist (paths are relative to mesh.yaml, here ${DIR})`,
    ])
    // One path needs no list.
    expect(parsed(yaml('name: x', 'services:', `  web: {command: node server.js, watch: ${tmp}}`)).services[0].watch).toEqual([tmp])
    expect(problems(yaml('name: x', 'services:', '  web: {command: node server.js, watch: src}'))).toEqual([
      `mesh.yaml:3:41 services.web.watch: src does not exist (paths are relative to mesh.yaml, here ${DIR})`,
    ])
    expect(problems(yaml('name: x', 'services:', '  db: {address: "127.0.0.1:5432", watch: [.]}'))).toEqual([
      'mesh.yaml:3:35 services.db.watch: the mesh runs no process of an address: service, so there is nothing to restart when files change',
    ])
  })
})

describe('dependsOn conditions, written as a stranger would', () => {
  it('answers a bare condition with the mapping to write', () => {
    expect(problems(yaml('name: x', 'services:', '  api: {command: a, dependsOn: {migrate: completed}}', '  migrate: {command: m, restart: "no"}'))).toEqual([
      'mesh.yaml:3:42 services.api.dependsOn.migrate: expected {condition: service_started | service_healthy | service_completed_successfully}, got "completed"; write {condition: service_completed_successfully}',
    ])
  })
})
