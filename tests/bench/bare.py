"""The webhook baseline: bare aiohttp answering every POST with 204 (``python -m tests.bench.bare PORT``).

It reads the form like the service does and nothing more: what the load generator and the
HTTP stack manage on this machine, the ceiling any webhook handler works under.
"""

from __future__ import annotations

import sys

from aiohttp import web


async def answer(request: web.Request) -> web.Response:
    await request.post()
    return web.Response(status=204)


def main() -> None:
    app = web.Application()
    app.router.add_post("/{tail:.*}", answer)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
