"""gunicorn settings for the embedded default: one process, threads, websockets, worker and SMTP inside."""

import gc
import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '5000')}"
workers = 1  # Socket.IO without a message queue needs a single process; scale out with REDIS_URL
worker_class = "gthread"
# Each open websocket (chat widget or console) holds one thread for its lifetime under gthread, so this caps
# concurrent sockets: 1,200 holds 1,000 widget visitors plus agents and requests (bench/widget_load.py).
# The pool grows on demand, so idle capacity costs nothing.
threads = int(os.environ.get("WEB_THREADS", "1200"))
# Caps open websockets too: keep it above sockets + concurrent HTTP requests.
worker_connections = int(os.environ.get("WEB_CONNECTIONS", "2000"))
timeout = 0  # long-lived websocket connections must not be killed as "stuck" workers
graceful_timeout = 10
control_socket_disable = True
accesslog = os.environ.get("ACCESS_LOG", None)
errorlog = "-"


def post_worker_init(worker):
    """Start the embedded outbox worker and SMTP listener inside the serving process."""
    from app.embedded import start_background_services

    worker.background_services = start_background_services(worker.wsgi)
    # Start-up leaves ~140,000 long-lived objects; freezing them keeps full garbage collections (and the
    # pauses they put into requests, such as the reports endpoint) short.
    gc.collect()
    gc.freeze()


def worker_exit(server, worker):
    for handle in getattr(worker, "background_services", []):
        handle.stop()
