// The balancer `policy.loadBalancer` names. Its own module so the balancers import the
// interface (balancer.ts) and this imports them: types flow one way.
import type {LoadBalancerConfig} from '../../config/types.js'
import type {Balancer, BalancerDeps} from './balancer.js'
import {EwmaBalancer} from './ewma.js'
import {LeastRequestBalancer} from './least-request.js'
import {RandomBalancer} from './random.js'
import {RingHashBalancer} from './ring-hash.js'
import {RoundRobinBalancer} from './round-robin.js'

export function createBalancer<T>(config: LoadBalancerConfig, deps: BalancerDeps<T>): Balancer<T> {
  switch (config.kind) {
    case 'round-robin':
      return new RoundRobinBalancer(deps.key)
    case 'random':
      return new RandomBalancer(deps.random, deps.key)
    case 'least-request':
      return new LeastRequestBalancer(deps.random, deps.key)
    case 'ewma':
      return new EwmaBalancer(deps.clock, deps.random, deps.key)
    case 'ring-hash':
      return new RingHashBalancer(deps.random, deps.key)
  }
}
