"""NPS analytics of the survey service: the figures (domain), the daily rollup and its queries (views),
the use cases (service), the JSON and CSV API (api), the staff dashboard (pages) and its SVG charts."""
