"""What gunicorn serves: ``gunicorn 'services.followup.wsgi:app'``."""

from shared.wiring import service_app

from .bootstrap import SERVICE

app = service_app(SERVICE)
