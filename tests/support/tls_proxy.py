"""A TLS-terminating proxy on loopback, for the remote client's HTTPS tests.

    tls_proxy.py --cert CERT.pem --key KEY.pem --target PORT --port-file FILE

Accepts TLS on 127.0.0.1 (an ephemeral port, written to FILE once listening),
and pumps each connection's decrypted bytes to 127.0.0.1:PORT (a plain HTTP
server, tests/support/http_server.h) and back. Real TLS (Python's ssl module,
OpenSSL underneath), so certificate verification in the client is exercised
for real. Runs until killed. Test support only.
"""
import argparse
import os
import socket
import ssl
import threading


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(conn, context, target):
    try:
        tls = context.wrap_socket(conn, server_side=True)
    except (ssl.SSLError, OSError):
        conn.close()  # the client refused our certificate: the test's point
        return
    upstream = socket.create_connection(("127.0.0.1", target))
    threading.Thread(target=pump, args=(upstream, tls), daemon=True).start()
    pump(tls, upstream)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--target", type=int, required=True)
    p.add_argument("--port-file", required=True)
    a = p.parse_args()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(a.cert, a.key)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(listener.getsockname()[1]))
    os.rename(tmp, a.port_file)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn, context, a.target), daemon=True).start()


if __name__ == "__main__":
    main()
