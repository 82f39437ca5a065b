"""The delivery dashboard: aggregate queries, advice for staff and a server-side SVG chart.

Everything here aggregates in the database (GROUP BY with conditional counts) over
``created_at`` ranges, which the ``created_at`` index bounds, so the cost follows the size of
the window, not of the table.
"""
