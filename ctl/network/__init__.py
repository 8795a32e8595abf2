"""The network management plane (Mizar's operators; issue #18, DESIGN.md §7).

``centaurusctl serve netoperator`` (:mod:`.main`) watches the network kinds through the shared
informers and turns them into data-plane state on the hosts' transit daemons:

* :mod:`.objects` - the kinds, field accessors and the derived values (gateway, MAC);
* :mod:`.allocator` - VNIs and endpoint IPs as allocation records in the API (one ConfigMap
  per VNI/IP, claimed by create, so two operators can never hand out the same value);
* :mod:`.placement` - which droplets carry a subnet's bouncers and a VPC's dividers;
* :mod:`.topology` - the operator's view of what each droplet must hold, entry by entry;
* :mod:`.programmer` - one queue per droplet that converges the transit daemon on that view
  through :class:`ctl.transit.client.TransitClient` (batched, idempotent, retried);
* :mod:`.nodehealth` - which droplets may carry bouncers/dividers (their Node Ready, or not
  NotReady for longer than the grace period);
* :mod:`.state` - what the reconcilers share (topology, allocator, programmers, node health);
* :mod:`.controllers` - the Network, VPC, Subnet, Endpoint and Droplet reconcilers;
* :mod:`.hollow` - a hollow transit daemon that counts RPCs (tests, benchmarks).

See docs/network.md for what is programmed where.
"""
