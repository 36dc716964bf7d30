"""``self.channel`` as services see it; defined in zato.config.channel, below the checks that fill it in."""

from zato.config.channel import CHANNEL, INVOKE_ASYNC_CHANNEL, INVOKE_CHANNEL, ChannelInfo, SecurityInfo

__all__ = ['CHANNEL', 'INVOKE_ASYNC_CHANNEL', 'INVOKE_CHANNEL', 'ChannelInfo', 'SecurityInfo']
