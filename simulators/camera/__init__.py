"""A simulated ONVIF camera fleet: Device, Media and Events over SOAP 1.2 with WS-UsernameToken,
a Digest-protected JPEG snapshot, an RTSP stub, PullPoint events, WS-Discovery and fault knobs.

It stands in for cameras that know nothing of wardwatch, so it imports none of our code.
See docs/camera-simulator.md.
"""

from wardwatch.simulators.camera.brands import BRANDS, Brand
from wardwatch.simulators.camera.fleet import DEFAULT_PASSWORD, DEFAULT_USER, CameraFleet
from wardwatch.simulators.camera.state import Faults

__all__ = ["BRANDS", "DEFAULT_PASSWORD", "DEFAULT_USER", "Brand", "CameraFleet", "Faults"]
