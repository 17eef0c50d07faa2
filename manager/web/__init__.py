"""regen serve: a read-only web view of the fleet (aiohttp, Jinja2 templates, server-side SVG plots).

    app.py      the aiohttp application: routes, caching of the store reads, no write action
    auth.py     who may look: nobody but loopback by default, a token (Bearer or basic auth) otherwise
    views.py    what each page shows, from plain values (pure): filtering, sorting, paging
    svg.py      line plots as inline SVG (pure): no script, no CDN, works offline
    templates/  the pages (Jinja2, autoescaped: every string from a report is untrusted)
"""
