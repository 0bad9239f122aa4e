// Who sets a version's count during a deploy: holds nest, a release counts once, a hold brings a retired version back.
import {expect, test} from 'vitest'
import {ScaleOwners} from '../../src/sim/deploy/scale-owners.js'

test('a version is the deploy\'s while any hold on it is open; retired until held again; every change is told', () => {
  const owners = new ScaleOwners()
  let changes = 0
  owners.onChange(() => changes++)
  expect(owners.owner('api', 'v2')).toBeUndefined()
  const strategy = owners.hold('api', ['v1', 'v2'])
  const rollback = owners.hold('api', ['v2'])
  strategy()
  strategy()
  expect(owners.owner('api', 'v1')).toBeUndefined()
  expect(owners.owner('api', 'v2')).toBe('deploy')
  // Only the service held: a version of the same name elsewhere is not.
  expect(owners.owner('web', 'v2')).toBeUndefined()
  owners.retire('api', ['v2'])
  // Held wins over retired while the hold lasts.
  expect(owners.owner('api', 'v2')).toBe('deploy')
  rollback()
  expect(owners.owner('api', 'v2')).toBe('retired')
  const again = owners.hold('api', ['v2'])
  again()
  expect(owners.owner('api', 'v2')).toBeUndefined()
  // Three holds, three releases (calling one twice is one), one retirement.
  expect(changes).toBe(7)
  // `mesh apply`: nothing stays retired.
  owners.retire('api', ['v1'])
  owners.forgetRetired()
  expect(owners.owner('api', 'v1')).toBeUndefined()
})
