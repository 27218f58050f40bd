"""The product's HTTP health probe, for Docker's health checks of Gunicorn and the dev server:
`GET PATH` on 127.0.0.1:PORT, healthy (exit 0) on an answer from 200 to 399, as
Kubernetes' httpGet. Run as `python -I -S probe.py PATH PORT`: a bare HTTP/1.0 request over a
socket, in isolated mode without the site module, about a quarter of the start-up of a urllib
probe, which every task pays at every interval. The image's HEALTHCHECK and the program's
(components/app.py http_probe) both run this file."""

import socket
import sys

path = sys.argv[1]
port = int(sys.argv[2])
connection = socket.create_connection(("127.0.0.1", port), timeout=4)
connection.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
status = int(connection.makefile("rb").readline().split()[1])
sys.exit(0 if 200 <= status < 400 else 1)
