"""The numbers: written as the work is done (``tallying``), kept (``maintenance``), and read by the
dashboard and the API (``stats``) and by ``/metrics`` (``metrics``), over the windows in ``windows``."""
