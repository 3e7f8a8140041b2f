//! What citizens read, in plain Simplified Chinese. Short: WeChat shows
//! replies on a phone, often to elderly readers.

pub const HELP: &str = "可以回复：\n\
查询 —— 我和家人最近的补贴（也可“查询 7月”“查询 低保”）\n\
绑定 身份证号 姓名 —— 绑定本人后才能查询\n\
解绑 —— 解除绑定\n\
政策 —— 补贴标准和条件（如“政策 低保”）\n\
项目 —— 本村的项目和资金来源\n\
公示 村名 —— 村务公示（如“公示 大旺村”）\n\
举报 —— 反映问题，可匿名\n\
进度 回执码 —— 查看举报的办理情况";

pub const WELCOME: &str = "您好，欢迎关注！这里可以查补贴、看村务公示、反映问题。";

pub const APOLOGY: &str = "抱歉，系统暂时忙，请稍后再试。";

pub const BIND_USAGE: &str = "请按格式回复：绑定 身份证号 姓名\n例如：绑定 450102195001010011 张三\n（身份证号不会显示或保存在聊天记录以外的地方）";
pub const BIND_REFUSED: &str = "没有绑定成功：身份证号与姓名对不上，或尚未登记。\n请核对：身份证号18位是否输全、末位X；姓名是否与户口本一致。仍不行请联系村委会。";
pub const BIND_TOO_MANY: &str = "尝试次数过多，请一小时后再试。";
pub const BIND_LIMIT: &str = "这个微信号绑定的人数已达上限，可先回复“解绑”。";
pub const NOT_BOUND: &str = "您还没有绑定身份。请回复：绑定 身份证号 姓名";
pub const UNBOUND: &str = "已解除绑定。";
pub const NOTHING_FOUND: &str = "暂未查到补贴发放记录。";

pub const SUBSCRIBE_SOON: &str = "到账提醒功能即将开通，敬请留意。";
pub const UNSUBSCRIBE_SOON: &str = "目前还没有开通到账提醒，无需退订。";

pub const DISCLOSURE_ASK: &str = "请回复：公示 村名，例如：公示 大旺村";
pub const VILLAGE_UNKNOWN: &str = "没有找到这个村，请核对村名。";
pub const PICK_NOTHING: &str = "请先发送要查的内容，例如：公示 大旺村";

pub const REPORT_STARTED: &str = "请描述您要反映的问题（什么人、什么事、在哪里），可以发送照片。\n说完后回复“提交”，不想反映了回复“取消”。";
pub const REPORT_ATTACHED: &str = "已记下。还可以继续补充，说完后回复“提交”。";
pub const REPORT_EMPTY: &str = "还没有内容，请先描述问题或发送照片。";
pub const REPORT_ASK_NAME: &str =
    "请选择：回复“匿名”（不留任何身份信息），或“实名”（便于工作人员联系您）。";
pub const REPORT_CANCELLED: &str = "已取消，内容没有提交。";
pub const REPORT_NONE: &str = "目前没有正在填写的举报。回复“举报”开始。";
pub const PROGRESS_ASK: &str = "请回复：进度 回执码";
pub const PROGRESS_UNKNOWN: &str = "没有找到这个回执码，请核对后重试。";
pub const PHOTO_OUTSIDE_REPORT: &str = "收到照片。如要反映问题，请先回复“举报”。";
