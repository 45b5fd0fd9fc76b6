"""An ML2 mechanism driver for the hke OpenStack test bed.

Neutron runs here without any L2 agent (no OVS, no OVN), so no stock
mechanism driver can bind a port and Nova would fail the boot with
PortBindingFailed. This driver binds every port on the first segment offered,
marks it ACTIVE, and does nothing else: there is no data plane.
"""

from neutron_lib.api.definitions import portbindings
from neutron_lib import constants
from neutron_lib.plugins.ml2 import api


class BindAllMechanismDriver(api.MechanismDriver):
    """Binds any port, on any host, to the first segment it is offered."""

    def initialize(self):
        pass

    # Ports without a fixed IP (e.g. port_security off, no subnet) can only be
    # bound by 'l2' drivers: neutron/plugins/ml2/managers.py
    # _check_drivers_connectivity.
    @property
    def connectivity(self):
        return portbindings.CONNECTIVITY_L2

    def bind_port(self, context):
        for segment in context.segments_to_bind:
            # 'ovs' is the VIF type Nova knows best; the fake virt driver
            # plugs nothing, so the details only need to be well formed.
            context.set_binding(
                segment[api.ID],
                portbindings.VIF_TYPE_OVS,
                {portbindings.CAP_PORT_FILTER: True,
                 portbindings.OVS_HYBRID_PLUG: False},
                status=constants.PORT_STATUS_ACTIVE)
            return
