"""Controllers of the control plane (``centaurusctl serve controllers``)."""
