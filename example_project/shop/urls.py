from django.urls import path

from . import views

app_name = "shop"

urlpatterns = [
    path("", views.product_list, name="products"),
    path("cart/", views.cart_view, name="cart"),
    path("checkout/", views.checkout, name="checkout"),
    path("pay/<uuid:token>/", views.pay, name="pay"),
    path("thanks/<uuid:token>/", views.thanks, name="thanks"),
    path("consent/", views.consent, name="consent"),
]
