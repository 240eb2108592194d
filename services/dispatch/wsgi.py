"""What gunicorn serves: ``gunicorn 'services.dispatch.wsgi:app'``."""

from shared.wiring import service_app

from .bootstrap import SERVICE

app = service_app(SERVICE)
