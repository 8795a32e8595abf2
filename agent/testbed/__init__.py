"""One-machine multi-host test bed: hosts are network namespaces on a bridge (the substrate),
each running its own transit daemon; endpoints are namespaces with a veth into their host.

``netns`` holds the namespace/link plumbing, ``dataplane`` the ``Testbed`` that builds hosts,
VPCs, subnets and endpoints and programs the transit daemons the way the network management
plane will. Everything a test bed creates is removed by ``Testbed.close()``.
"""
