"""The service bench/cache.py serves through a cached and an uncached REST channel: a catalogue page
built per request (50 products as JSON), standing in for a back end worth caching."""

from zato.server.service import Service


class Catalogue(Service):
    name = 'bench.cache.catalogue'

    def handle_GET(self):  # noqa: N802 - Zato 3.1's name
        page = int(self.request.http.GET.get('page', '1'))
        self.response.payload = {'page': page, 'products': [
            {'sku': f'SKU-{page}-{i:04d}', 'name': f'Product {i}', 'price': round(9.99 + i * 0.5, 2), 'stock': i * 3}
            for i in range(50)]}
