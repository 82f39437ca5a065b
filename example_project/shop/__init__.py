"""The demo shop: products, a session cart, checkout, a fake payment and a thank-you page."""
