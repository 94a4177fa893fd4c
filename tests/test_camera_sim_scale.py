"""Two hundred simulated cameras in one process start and each answers GetSystemDateAndTime.
A correctness test: how fast they start belongs in bench/."""

from __future__ import annotations

import asyncio

import aiohttp
from lxml import etree

from wardwatch.simulators.camera import CameraFleet

REQUEST = (b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>'
           b'<GetSystemDateAndTime xmlns="http://www.onvif.org/ver10/device/wsdl"/></s:Body></s:Envelope>')
COUNT = 200


async def test_two_hundred_cameras_answer() -> None:
    async with CameraFleet(count=COUNT, brand="mix", control_port=0) as fleet:
        cams = fleet.listing()
        ports = [c["onvif_port"] for c in cams] + [c["rtsp_port"] for c in cams]
        assert len(set(ports)) == 2 * COUNT
        limit = asyncio.Semaphore(20)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:

            async def ask(url: str) -> int:
                async with limit, session.post(url, data=REQUEST,
                                               headers={"Content-Type": "application/soap+xml"}) as r:
                    assert r.status == 200
                    assert r.headers["Content-Type"].startswith("application/soap+xml")
                    root = etree.fromstring(await r.read())
                    years = root.xpath("//*[local-name()='UTCDateTime']//*[local-name()='Year']/text()")
                    return int(years[0])

            years = await asyncio.gather(*(ask(c["device_service"]) for c in cams))
        assert len(years) == COUNT and all(y >= 2024 for y in years)
        async with aiohttp.ClientSession() as session, session.get(f"{fleet.control_url}/cameras") as r:
            assert len(await r.json()) == COUNT
