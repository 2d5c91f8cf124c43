"""Partner pages: uploads (the landing page), an upload's detail and mapping, mapping profiles."""

from portal.partner import bp
from portal.web.uploads import register_mapping_views, register_upload_views

register_upload_views(bp, list_rule="/")
register_mapping_views(bp)
