"""SQLAlchemy models, one module per aggregate. Importing this package registers every table."""

from app.models.alert import Alert
from app.models.audit import AuditLog
from app.models.base import Base, utcnow
from app.models.call import Call
from app.models.canned import CannedResponse
from app.models.channel import Channel
from app.models.conversation import Conversation
from app.models.customer import Customer, CustomerIdentity
from app.models.inbound_mail import InboundMail
from app.models.message import Attachment, Message
from app.models.report import ReportCell, ReportDirtyDay, ReportHourly, ReportState
from app.models.topic import ConversationTopic, Topic
from app.models.user import ROLES as ROLES_TUPLE
from app.models.user import Team, User, team_members

__all__ = [
    "ROLES_TUPLE",
    "Alert",
    "Attachment",
    "AuditLog",
    "Base",
    "Call",
    "CannedResponse",
    "Channel",
    "Conversation",
    "ConversationTopic",
    "Customer",
    "CustomerIdentity",
    "InboundMail",
    "Message",
    "ReportCell",
    "ReportDirtyDay",
    "ReportHourly",
    "ReportState",
    "Team",
    "Topic",
    "User",
    "team_members",
    "utcnow",
]
